"""The ``tribridge`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tribridge import __version__

DESCRIPTION = """\
tribridge: a gateway from HTTP/JSON to Dubbo2 (hessian2) and Triple/gRPC services, with
service discovery (ZooKeeper, Nacos, Eureka, Kubernetes), protobuf IDL routes, a Dubbo2
ingress and gateway-to-gateway relay."""

EXAMPLES = """\
examples:
  tribridge demo --port 8080 --provider-port 20880
      a Dubbo2 demo provider on port 20880 behind the gateway; prints curl lines to try
  tribridge call dubbo://127.0.0.1:20880 com.tribridge.demo.DemoService.greet '["world"]' --version 1.0.0
      call one method from the shell (here: the demo's); the result is printed as JSON
  tribridge run -c gateway.yaml
      run the gateway from a YAML config (README.md, "Configuration")
  tribridge registry ls zookeeper://127.0.0.1:2181
      the services a registry knows (add a SERVICE for its instances)
  tribridge codec encode --type 'long[]' '[1,2]'
      JSON -> hessian2 hex for a Java type
  tribridge codec decode 72055b6c6f6e67e1e2
      hessian2 hex -> JSON (--typed shows the Java types, --frame decodes a Dubbo2 frame)

Run 'tribridge COMMAND --help' for the options of one command."""


def _codec_decode(args: argparse.Namespace) -> int:
    from tribridge.codecs.dubbo import DubboProtocolError
    from tribridge.codecs.hessian2 import HessianError
    from tribridge.ops import wiredump

    text = args.hex if args.hex is not None else sys.stdin.read()
    try:
        data = wiredump.parse_hex(text)
        out = wiredump.dump_frame(data) if args.frame else wiredump.dump_value(data, args.typed)
    except (HessianError, DubboProtocolError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(out.decode() + "\n")
    return 0


def _codec_encode(args: argparse.Namespace) -> int:
    from tribridge.codecs.hessian2 import HessianError
    from tribridge.ops import wiredump

    try:
        out = wiredump.encode_json(args.json, args.type, generic=args.generic)
    except (HessianError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(out.hex())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tribridge",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"tribridge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    codec = sub.add_parser("codec", help="decode / encode hessian2 and Dubbo2 wire bytes")
    csub = codec.add_subparsers(dest="codec_command", required=True)
    dec = csub.add_parser("decode", help="hex -> JSON (hex from the argument or stdin)")
    dec.add_argument("hex", nargs="?")
    dec.add_argument("--frame", action="store_true", help="decode a whole Dubbo2 frame")
    dec.add_argument("--typed", action="store_true", help="print typed JSON (int vs long, ...)")
    dec.set_defaults(func=_codec_decode)
    enc = csub.add_parser("encode", help="JSON -> hessian2 hex")
    enc.add_argument("json")
    enc.add_argument("--type", "-t", default="java.lang.Object", help="Java type, e.g. long[]")
    enc.add_argument("--generic", action="store_true", help="generalized ($invoke) form")
    enc.set_defaults(func=_codec_encode)

    from tribridge.cli import commands

    commands.add_subcommands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
