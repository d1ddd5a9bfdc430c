"""`tutela gateway ...`: run the AI gateway, verify its audit log, make API keys."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_ERROR, CliContext, emit_json


def register(groups: Any) -> None:
    p = groups.add_parser("gateway", help="the AI gateway: inline firewall for LLM APIs, and the scan API")
    sub = p.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)

    sv = sub.add_parser("serve", help="run the gateway in the foreground (started by `tutela up`)")
    sv.add_argument("--listen", default="127.0.0.1:8480", help="HOST:PORT (default 127.0.0.1:8480)")
    sv.add_argument("--upstream", help="the upstream's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    sv.add_argument("--config", dest="gateway_config", type=Path, help="gateway profiles/keys YAML (hot-reloaded)")
    sv.add_argument(
        "--workers",
        type=int,
        help="processes serving the listen address (SO_REUSEPORT; default gateway.workers, 0: one per CPU core)",
    )
    sv.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)  # set by worker 0 for the others
    sv.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # worker 0's pid
    sv.set_defaults(handler=_serve)

    mp = sub.add_parser(
        "mcp-proxy",
        help="put tutela in front of an MCP server (stdio or streamable HTTP): tools, prompts, results judged",
        description="stdio: start COMMAND as an MCP stdio server and relay JSON-RPC between it and the client on "
        "this process's stdin/stdout; point the MCP client at `tutela gateway mcp-proxy -- COMMAND ARGS...` instead "
        "of `COMMAND ARGS...`. Streamable HTTP: `--upstream-url URL --listen HOST:PORT` serves an MCP endpoint "
        "(--path) that relays to the server's URL; point the client at http://HOST:PORT/mcp. Either way tool and "
        "prompt descriptions, tool-call arguments, tool results, resources and prompts are judged under a profile.",
    )
    mp.add_argument("--profile", help="gateway profile to judge under (default: the config's default_profile)")
    mp.add_argument("--app", help="app name, for the config's `apps:` profile mapping and the events")
    mp.add_argument("--config", dest="gateway_config", type=Path, help="gateway profiles YAML (hot-reloaded)")
    mp.add_argument("--upstream-url", help="the MCP server's streamable-HTTP endpoint, e.g. http://127.0.0.1:8000/mcp")
    mp.add_argument(
        "--listen", default="127.0.0.1:8481", help="with --upstream-url: HOST:PORT (default 127.0.0.1:8481)"
    )
    mp.add_argument("--path", default="/mcp", help="with --upstream-url: the endpoint path served (default /mcp)")
    mp.add_argument("server", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]: the MCP server to run")
    mp.set_defaults(handler=_mcp_proxy)

    au = sub.add_parser("audit", help="the hash-chained audit log")
    au_sub = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    ve = au_sub.add_parser("verify", help="check that no record was altered, inserted, reordered or removed")
    ve.add_argument("--file", type=Path, help="audit log (default: $TUTELA_HOME/gateway/audit.jsonl)")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(handler=_verify)

    ke = sub.add_parser("keys", help="gateway API keys")
    ke_sub = ke.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    nk = ke_sub.add_parser("new", help="make a key: prints it once, and the config entry holding only its hash")
    nk.add_argument("--id", required=True, help="a name for the key")
    nk.add_argument("--tenant", default="default")
    nk.add_argument("--profile")
    nk.add_argument("--app")
    nk.set_defaults(handler=_new_key)


def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.core.errors import ConfigError
    from tutela.runtime.gateway.server import gateway_settings, resolve_workers, serve

    gw = gateway_settings(ctx.settings, upstream=args.upstream, config_file=args.gateway_config)
    if args.workers is not None:
        if not 0 <= args.workers <= 64:
            raise ConfigError(f"--workers {args.workers}: between 0 (one per CPU core) and 64")
        gw = gw.model_copy(update={"workers": resolve_workers(args.workers)})
    if args.worker_index == 0:
        info = {"service": "gateway", "listen": args.listen, "upstream": gw.upstream is not None, "workers": gw.workers}
        print(json.dumps(info), flush=True)
    argv = sys.argv[1:]
    serve(ctx.settings, gw, args.listen, ctx.detectors, worker=args.worker_index, argv=argv, parent=args.worker_of)
    return EXIT_CLEAN


def _mcp_proxy(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.core.errors import ConfigError
    from tutela.runtime.gateway.app import Gateway
    from tutela.runtime.gateway.mcp import run_stdio
    from tutela.runtime.gateway.server import gateway_settings

    argv = args.server[1:] if args.server[:1] == ["--"] else args.server
    if argv and args.upstream_url:
        raise ConfigError("give either an MCP server command (stdio) or --upstream-url (streamable HTTP), not both")
    if not argv and not args.upstream_url:
        raise ConfigError(
            "no MCP server given",
            hint="tutela gateway mcp-proxy -- python my_server.py, or --upstream-url http://127.0.0.1:8000/mcp",
        )
    gw = gateway_settings(ctx.settings, config_file=args.gateway_config)
    gateway = Gateway(
        gw,
        home=ctx.settings.home,
        store_path=ctx.settings.store_path,
        registry=ctx.detectors,
        default_specs=ctx.settings.detectors.get("runtime"),
    )
    if args.upstream_url:
        from tutela.runtime.gateway.mcp_http import serve_http

        info = {"service": "mcp-proxy", "listen": args.listen, "path": args.path, "upstream": args.upstream_url}
        print(json.dumps(info), flush=True)
        serve_http(gateway, args.listen, args.upstream_url, path=args.path, profile=args.profile, app=args.app)
        return EXIT_CLEAN
    return run_stdio(gateway, argv, profile=args.profile, app=args.app)


def _verify(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.runtime.gateway.audit import verify
    from tutela.runtime.gateway.server import gateway_settings

    paths = [args.file]
    if args.file is None:  # the default log and, with several gateway workers, each worker's own chain
        gw = gateway_settings(ctx.settings)
        first = gw.audit_file or ctx.settings.home / "gateway" / "audit.jsonl"
        paths = [first, *sorted(first.parent.glob(f"{first.stem}.w[0-9]*{first.suffix}"))]
    results = [(path, verify(path)) for path in paths]
    ok = all(r.ok for _, r in results)
    if args.json:
        docs = [{"file": str(path), **r.to_dict()} for path, r in results]
        emit_json(docs[0] if len(docs) == 1 else docs)
        return EXIT_CLEAN if ok else EXIT_ERROR
    for path, result in results:
        if result.ok:
            print(f"{path}: {result.records} records, chain intact")
        elif not path.exists():
            print(f"{path}: no audit log here (the gateway writes one once it has served a request)")
        else:
            at = f" (line {result.line})" if result.line else ""
            print(f"{path}: BROKEN after {result.records} good records{at}: {result.problem}")
    return EXIT_CLEAN if ok else EXIT_ERROR


def _new_key(args: argparse.Namespace, ctx: CliContext) -> int:
    import yaml

    from tutela.runtime.gateway.keys import key_hash, new_key

    key = new_key()
    entry = {"id": args.id, "tenant": args.tenant, "sha256": key_hash(key)}
    if args.profile:
        entry["profile"] = args.profile
    if args.app:
        entry["app"] = args.app
    print(f"key (shown once, give it to the client): {key}")
    print("add to the gateway config under `keys:`:")
    print(yaml.safe_dump([entry], sort_keys=False).rstrip())
    return EXIT_CLEAN
