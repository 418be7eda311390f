"""Pipeline folders on disk or on the Hugging Face Hub, through ``huggingface_hub`` (no home-made transfer).

A pipeline folder holds one sub-folder per component (``model.safetensors`` + ``config.json`` + model card),
exactly the layout of the bundled ``weights/``; a Hub repo holds the same sub-folders at its root. Loading a
folder never touches the network; a repo id downloads only the components' files (or, offline, uses the
local Hugging Face cache) and then loads them like any folder, sha256 checks included.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cardiosynth.weights import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, WeightsError, read_config

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(value: str | Path) -> bool:
    """``owner/name`` that is not an existing local path."""
    return isinstance(value, str) and bool(_REPO_ID.match(value)) and not Path(value).exists()


def has_component(folder: Path, component: str) -> bool:
    return (folder / component / CONFIG_FILE).is_file() and (folder / component / WEIGHTS_FILE).is_file()


def _complete(folder: Path, components: tuple[str, ...]) -> list[str]:
    return [c for c in components if not has_component(folder, c)]


def resolve_folder(folder_or_hub_id: str | Path, components: tuple[str, ...], revision: str | None = None,
                   local_files_only: bool | None = None, optional: tuple[str, ...] = ()) -> Path:
    """The local folder holding ``components`` (and ``optional`` ones where they exist): the path itself, or
    the Hub snapshot of a repo id."""
    if is_hub_id(folder_or_hub_id):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        patterns = [f"{c}/{name}" for c in components + tuple(optional) for name in (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)]
        try:
            folder = Path(snapshot_download(str(folder_or_hub_id), revision=revision, allow_patterns=patterns,
                                            local_files_only=bool(local_files_only)))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
            raise WeightsError(f"Could not get {folder_or_hub_id} from the Hugging Face Hub (or its local cache): "
                               f"{str(error).splitlines()[0]}") from None
    else:
        folder = Path(folder_or_hub_id)
    missing = _complete(folder, components)
    if missing:
        raise WeightsError(f"{folder_or_hub_id} lacks the trained components {', '.join(missing)} "
                           f"(each a folder with {WEIGHTS_FILE} and {CONFIG_FILE}); see training/reproduce_all.py")
    return folder


def folder_fingerprint(folder: Path, components: tuple[str, ...]) -> str:
    """One sha256 over the components' recorded weight hashes: names the exact model a cine came from."""
    digest = hashlib.sha256()
    for component in components:
        digest.update(read_config(folder / component)["sha256"].encode())
    return digest.hexdigest()


def push_folder(repo_id: str, folder: str | Path, components: tuple[str, ...], private: bool = True,
                token: str | None = None, commit_message: str = "Upload CardioSynth weights") -> str:
    """Create (or reuse) the model repo and upload the components' weights, configs and model cards."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    missing = _complete(folder, components)
    if missing:
        raise WeightsError(f"Nothing pushed: {folder} lacks {', '.join(missing)}")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                               allow_patterns=[f"{c}/*" for c in components], commit_message=commit_message)
    return str(getattr(commit, "commit_url", commit))
