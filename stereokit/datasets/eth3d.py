"""`eth3d:PATH`: the ETH3D low-res two-view benchmark (training layout).

Each scene folder holds ``im0.png`` (left), ``im1.png`` (right) and ``calib.txt`` (Middlebury 2014 format), and
the ground truth ``disp0GT.pfm`` (inf unknown) and ``mask0nocc.png`` (255 non-occluded). ETH3D ships the GT in a
separate archive (``two_view_training_gt/<scene>/``): GT files are looked up in the scene folder first, then in a
``two_view_training_gt/<scene>`` folder beside the scenes' folder. PATH may be one scene or a folder of scenes
(two levels deep); pair names are the scene folder names.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..errors import StereoKitError
from ..pair import StereoPair
from .base import Dataset, require_dir, unique_names
from .middlebury import find_scenes, image_files, load_scene

GT_FOLDER = "two_view_training_gt"
GT_FILES = ("disp0GT.pfm", "mask0nocc.png")  # the GT archive's scene folders hold only these


def _is_scene(folder: Path) -> str | None:
    """'im0' for a scene folder, None for one without images or with GT files only; an incomplete scene raises."""
    has = [n for n in ("im0.png", "im1.png") if (folder / n).is_file()]
    if len(has) == 2:
        return "im0"
    if has:
        missing = "im1.png" if has == ["im0.png"] else "im0.png"
        raise StereoKitError(f"incomplete ETH3D scene {folder}: {missing} is missing")
    other = image_files(folder, exclude=GT_FILES)
    if other:
        raise StereoKitError(f"{folder} holds images ({', '.join(other[:4])}) but no ETH3D im0.png/im1.png")
    return None


def _gt_dirs(scene: Path) -> tuple[Path, ...]:
    cands = [scene.parent.parent / GT_FOLDER / scene.name, scene.parent / GT_FOLDER / scene.name]
    return tuple(d for d in cands if d.is_dir())


def eth3d_dataset(path: str, spec: str) -> Dataset:
    root = require_dir(path, spec)
    scenes = [s for s in find_scenes(root, _is_scene) if s.parent.name != GT_FOLDER]
    if not scenes:
        raise StereoKitError(f"no ETH3D scenes under {root} (looked for folders with im0.png and im1.png, two "
                             f"levels deep)")
    names = unique_names([s.name for s in scenes], [s.parent.name for s in scenes])
    return Dataset(spec, names, partial(_load_at, tuple(scenes)))


def _load_at(scenes: tuple[Path, ...], i: int) -> StereoPair:
    return load_scene(scenes[i], "im0", _gt_dirs(scenes[i]))
