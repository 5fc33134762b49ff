"""`eucasim lab up|down`: the whole cloud in real mode on this machine, as root: the seed's
front end and node as network namespaces, QEMU guests under libvirt, the linux network driver
(services/lab/cloud.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.lab import guest as tiny_guest
from services.lab.cloud import DEFAULT_DIR, DEFAULT_GUEST_CACHE, Lab

lab_app = typer.Typer(help="Real mode on one host: namespaces, libvirtd, QEMU guests.",
                      no_args_is_help=True)
err = Console(stderr=True)
DirOption = Annotated[Path, typer.Option("--dir", help="Where the lab keeps its state.")]
CacheOption = Annotated[Path, typer.Option("--guest-cache", help="Where the tiny guest is built, once.")]


@lab_app.command("up")
def up(directory: DirOption = DEFAULT_DIR, guest_cache: CacheOption = DEFAULT_GUEST_CACHE) -> None:
    """Build the lab and start the cloud in it (runs in the background; `lab down` ends it)."""
    lab = Lab(directory, guest_cache)
    try:
        lab.up(say=lambda line: err.print(line))
    except (RuntimeError, PermissionError, OSError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    print(lab.banner(), flush=True)


@lab_app.command("down")
def down(directory: DirOption = DEFAULT_DIR, guest_cache: CacheOption = DEFAULT_GUEST_CACHE) -> None:
    """Remove every namespace, device, process, domain and file the lab made."""
    Lab(directory, guest_cache).down()
    err.print("the lab is down")


@lab_app.command("guest")
def guest(guest_cache: CacheOption = DEFAULT_GUEST_CACHE) -> None:
    """Build the tiny guest (kernel, ramdisk, root image) and print its three files, for
    `eucasim image upload` on a real cloud, as the lab registers it (deploy/README.md)."""
    files = tiny_guest.build(guest_cache)
    for path in (files.kernel, files.ramdisk, files.root):
        print(path)
