"""Live2dService: characters, costumes, names and icons, through l2dfs."""

from __future__ import annotations

from typing import Optional

from . import _l2dfs
from .bestdori_client import BestdoriClient
from .models import AssetKey, Language, Live2dCostume, Live2dFileSpec

# name.txt's suffix when the costume has no name in the chosen language.
OTHER_LANGUAGE_SUFFIX = "（日服）"


class Live2dService:
    def __init__(self, client: BestdoriClient, language: Language = Language.SIMPLIFIED_CHINESE) -> None:
        """language: names in this language (-o lang=); None leaves it to
        l2dfs (zh-hans unless L2DFS_OPTIONS says otherwise)."""
        self.client = client
        self.language = language

    def _lang(self) -> Optional[str]:
        return self.language.l2dfs_name if self.language is not None else None

    def _run(self, cmd: str, *args, ok=(0,)):
        return self.client._run(cmd, *args, ok=ok, lang=self._lang())

    def list_characters(self) -> list:
        """[{"id": "1", "name": "户山 香澄"}, ...]: every roster character, in
        roster order, named in the service's language; where the roster has
        no name in it, in Japanese, else in the first language it has one."""
        lang = self.language.value if self.language is not None else Language.SIMPLIFIED_CHINESE.value
        out = []
        for cid, entry in self.client.get_characters_roster().items():
            names = entry.get("characterName") or []
            order = [lang] + list(range(len(names)))
            name = next((names[i] for i in order if i < len(names) and names[i] is not None), None)
            if name is not None:
                out.append({"id": str(cid), "name": name})
        return out

    def search_character(self, name: str, *, match_threshold=75, all_language_result=False) -> Optional[dict]:
        """The best fuzzy match of name among the characters' names (in the
        service's language, or in all five with all_language_result, where
        "name" is then the list of five names); None below match_threshold."""
        args = ["--all", "--json", "--min-score", str(int(match_threshold))]
        if all_language_result:
            args.append("--all-languages")
        r = self._run("search", *args, "--", name, ok=(0, _l2dfs.EXIT_FAILED))
        lines = _l2dfs.json_lines(r.stdout)
        if r.returncode != 0 or not lines:
            return None
        best = lines[0]
        return {"id": str(best["id"]), "name": best["names"] if all_language_result else best["name"]}

    def search_costumes(self, chara_id: int, *, include_live_event: bool = True) -> list:
        """The live2d names of a character's costumes, in the site's order
        (live_event costumes last, then by the first number after the first
        '_', then by name). include_live_event=False leaves out names that
        contain "live_event"."""
        args = ["--id", str(int(chara_id)), "--json"]
        if not include_live_event:
            args.append("--no-live-event")
        r = self._run("costumes", *args, ok=(0, _l2dfs.EXIT_USAGE))
        return [x["live2d_name"] for x in _l2dfs.json_lines(r.stdout)] if r.returncode == 0 else []

    def get_costume_name(self, live2d_name: str, other_language=False) -> Optional[str]:
        """The costume's display name; None if it has none in the service's
        language (unless other_language: then another language's name
        followed by （日服）) or is not in the costume index."""
        data = self.client._cat(live2d_name, "name.txt", lang=self._lang())
        if data is None:
            return None
        text = data.decode("utf-8").rstrip("\n")
        if text.endswith(OTHER_LANGUAGE_SUFFIX) and not other_language:
            return None
        return text or None

    def get_costume_icon(self, live2d_name: str) -> Optional[bytes]:
        """The costume's icon.png; None when the site has none (also for a
        costume the costume index lacks, or an unknown one). Other failures
        raise (L2dfsError) within the client's timeout_seconds and retries."""
        return self.client._cat(live2d_name, "icon.png")

    def build_costume(self, live2d_name: str) -> Live2dCostume:
        """The costume's files (from its buildData.asset, fetched by l2dfs).
        HttpStatusError(404) for a name the site does not know."""
        files = [
            Live2dFileSpec(source=AssetKey(x["bundle"], x["file"], self.client.server), rel_path=x["rel_path"],
                           optional=bool(x["optional"]), kind=x["kind"])
            for x in self.client._file_list(live2d_name, lang=self._lang())
            if x["kind"] != "icon"
        ]
        return Live2dCostume(live2d_name=live2d_name, files=files, _client=self.client)
