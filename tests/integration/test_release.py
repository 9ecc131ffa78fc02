"""The release binary carries no test switch (they live in build/l2dfs-test)."""
import os
import pytest


@pytest.mark.parametrize("switch", [b"L2DFS_TEST", b"L2DFS_TIME_OFFSET"])
def test_release_binary_has_no_test_switch(l2dfs_bin, l2dfs_release_bin, switch):
    path = l2dfs_release_bin
    with open(path, "rb") as f:
        data = f.read()
    assert switch not in data
    # ...while the test build has them, so the check looks at the right thing.
    if os.path.realpath(path) != os.path.realpath(l2dfs_bin):
        with open(l2dfs_bin, "rb") as f:
            assert switch in f.read()
