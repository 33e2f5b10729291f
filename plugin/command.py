"""`stillmotion install-host blender|resolve`: put the host add-on where the host looks for it."""

from __future__ import annotations

import argparse

from .install import HOSTS, enable_hint, plan, write_plan

NAME = "install-host"
HELP = "install the Blender add-on or the DaVinci Resolve script into the host's user folder"
DESCRIPTION = """\
Write the StillMotion add-on for HOST into the host's per-user folder, linked to this environment (the venv's
python and site-packages are written into the add-on, so Blender or Resolve find StillMotion; renders always
run in this venv's Python, never inside the editor).

  blender  Blender 3.x-4.1: ~/.config/blender/X.Y/scripts/addons/stillmotion_vse/ (legacy add-on, bl_info)
           Blender 4.2+:   ~/.config/blender/X.Y/extensions/user_default/stillmotion_vse/ (blender_manifest.toml)
           (macOS: ~/Library/Application Support/Blender/X.Y/..., Windows: %APPDATA%\\Blender Foundation\\Blender\\X.Y\\...)
           X.Y comes from `blender --version`, else the newest folder there, else --blender-version.
  resolve  ~/.local/share/DaVinciResolve/Fusion/Scripts/Utility/StillMotion.py (Linux)
           ~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility (macOS)
           %APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts\\Utility (Windows)

Prints every file it writes (or would write, with --dry-run) and how to enable the add-on. Running it again
replaces the earlier install. Writes are atomic. See docs/hosts.md.

examples:
  stillmotion install-host blender --dry-run
  stillmotion install-host blender --blender-version 4.2
  stillmotion install-host resolve --target ~/resolve-scripts
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", choices=HOSTS, help="the editor to install into")
    parser.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    parser.add_argument("--target", metavar="DIR",
                        help="write into DIR instead of the host's user folder (the add-on folder or script "
                             "goes inside DIR)")
    parser.add_argument("--blender-version", metavar="X.Y",
                        help="Blender version to install for (default: from `blender --version`)")
    parser.add_argument("--python", metavar="PATH",
                        help="the interpreter renders run with (default: this one, the venv's)")


def run(args: argparse.Namespace) -> int:
    folder, files = plan(args.host, args.target, args.blender_version, args.python)
    if args.dry_run:
        for planned in files:
            print(f"would write {planned.path} ({len(planned.text.encode())} bytes)")
        print(f"dry run: nothing written; then {enable_hint(args.host, folder)}")
        return 0
    for path in write_plan(files):
        print(f"wrote {path}")
    print(f"installed for {args.host} in {folder}; {enable_hint(args.host, folder)}")
    return 0
