"""``lutforge cache info|clear``: what the build cache ($LUTFORGE_CACHE) holds, checked on request,
and removing all of it or some kinds."""

from ..support.cache_contents import cache_info, clear_cache
from .common import check_writable, no_repeats, write_json

__all__ = ["register"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def cmd_info(args) -> int:
    check_writable(args.json)
    info = cache_info(verify=args.verify)
    print(f"cache {info.root}: {len(info.kinds)} kinds, {info.entries} entries, {_size(info.bytes)}")
    for k in info.kinds:
        print(f"  {k.kind:22s} {k.entries:6d} entries {_size(k.bytes):>10s}  {k.folder}")
        for bad in k.bad:
            print(f"    failed its check: {bad.path}: {bad.problem}")
    write_json(args.json, info)
    if info.bad:
        print(f"{len(info.bad)} of {info.entries} entries failed their check; each is discarded and rebuilt when "
              f"next used, or remove their kinds now with `lutforge cache clear KIND`.")
        return 1
    if info.verified:
        print(f"all {info.entries} entries match their records")
    return 0


def cmd_clear(args) -> int:
    check_writable(args.json)
    result = clear_cache(no_repeats(args.kinds, "cache clear"))
    what = ", ".join(result.kinds) if result.kinds else "nothing (the cache is empty)"
    print(f"cleared {what} from {result.root}: {result.entries} entries, {_size(result.bytes)} freed")
    write_json(args.json, result)
    return 0


def register(sub) -> None:
    p = sub.add_parser("cache", help="show, check or clear the build cache ($LUTFORGE_CACHE)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    info = actions.add_parser("info", help="entries and size of each kind of cache entry")
    info.add_argument("--verify", action="store_true",
                      help="check every entry against its recorded SHA-256 and name those that fail (exit 1)")
    info.add_argument("--json", metavar="PATH", help="write the result as JSON")
    info.set_defaults(func=cmd_info)

    clear = actions.add_parser("clear", help="remove the whole cache, or the named kinds")
    clear.add_argument("kinds", nargs="*", metavar="KIND", help="kinds to remove (see `lutforge cache info`)")
    clear.add_argument("--json", metavar="PATH", help="write what was removed as JSON")
    clear.set_defaults(func=cmd_clear)
