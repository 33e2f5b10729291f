"""The few X11 look-ups a panel inside a host needs (ctypes on libX11, nothing to install): the host's own
top-level windows, found by the `_NET_WM_PID` its toolkit sets, so the panel can be made transient for the
host's window (the window manager then keeps it above that window only, not above every application).

Only used on Qt's xcb platform; every function answers "nothing" (empty, None) when there is no X display.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

XA_CARDINAL = 6
Success = 0
#: How deep to look under the root: 1 without a window manager, 2-3 under reparenting ones.
SEARCH_DEPTH = 3

_Window = ctypes.c_ulong
_Atom = ctypes.c_ulong


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    lib.XDefaultRootWindow.restype = _Window
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XInternAtom.restype = _Atom
    lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.XQueryTree.argtypes = [ctypes.c_void_p, _Window, ctypes.POINTER(_Window), ctypes.POINTER(_Window),
                               ctypes.POINTER(ctypes.POINTER(_Window)), ctypes.POINTER(ctypes.c_uint)]
    lib.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, _Window, _Atom, ctypes.c_long, ctypes.c_long, ctypes.c_int, _Atom,
        ctypes.POINTER(_Atom), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_void_p)]
    lib.XGetTransientForHint.argtypes = [ctypes.c_void_p, _Window, ctypes.POINTER(_Window)]
    lib.XFree.argtypes = [ctypes.c_void_p]
    return lib


@contextmanager
def _display() -> Iterator[tuple[ctypes.CDLL, int] | None]:
    lib = _library() if os.environ.get("DISPLAY") else None
    display = lib.XOpenDisplay(None) if lib is not None else None
    try:
        yield (lib, display) if display else None
    finally:
        if display:
            lib.XCloseDisplay(display)


def _children(lib: ctypes.CDLL, display: int, window: int) -> list[int]:
    root, parent = _Window(), _Window()
    children, count = ctypes.POINTER(_Window)(), ctypes.c_uint()
    if not lib.XQueryTree(display, window, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children),
                          ctypes.byref(count)):
        return []
    found = [children[i] for i in range(count.value)]
    if children:
        lib.XFree(children)
    return found


def _pid(lib: ctypes.CDLL, display: int, window: int, atom: int) -> int | None:
    kind, form = _Atom(), ctypes.c_int()
    items, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
    status = lib.XGetWindowProperty(display, window, atom, 0, 1, 0, XA_CARDINAL, ctypes.byref(kind),
                                    ctypes.byref(form), ctypes.byref(items), ctypes.byref(after), ctypes.byref(data))
    try:
        if status != Success or not data.value or items.value < 1 or form.value != 32:
            return None
        return int(ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0])  # 32-bit items come as C longs
    finally:
        if data.value:
            lib.XFree(data)


def process_windows(pid: int | None = None, exclude: frozenset[int] = frozenset()) -> list[int]:
    """X windows near the root whose `_NET_WM_PID` is `pid` (this process by default), outermost first."""
    pid = os.getpid() if pid is None else pid
    with _display() as opened:
        if opened is None:
            return []
        lib, display = opened
        atom = lib.XInternAtom(display, b"_NET_WM_PID", 1)
        if not atom:
            return []
        found: list[int] = []
        level = [lib.XDefaultRootWindow(display)]
        for _depth in range(SEARCH_DEPTH):
            below: list[int] = []
            for window in level:
                for child in _children(lib, display, window):
                    if child not in exclude and _pid(lib, display, child, atom) == pid:
                        found.append(child)
                    else:
                        below.append(child)
            level = below
        return found


def transient_for(window: int) -> int | None:
    """The window `window` is transient for (WM_TRANSIENT_FOR), if any."""
    with _display() as opened:
        if opened is None:
            return None
        lib, display = opened
        parent = _Window()
        if lib.XGetTransientForHint(display, window, ctypes.byref(parent)) and parent.value:
            return int(parent.value)
        return None
