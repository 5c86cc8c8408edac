"""python -m wechat.emulator --port 5050 [--public-base-url http://127.0.0.1:5000]

Serves the emulator alone for the accounts in Liebian's environment (same env vars as the app); point
Liebian at it with WECHAT_API_BASE / WECHAT_OPEN_BASE / WECHAT_MP_BASE / WECHATPAY_API_BASE."""
from __future__ import annotations

import argparse
import os

from werkzeug.serving import run_simple

from app.config import load_settings
from wechat.emulator import create_emulator_for


def main() -> None:
    ap = argparse.ArgumentParser(description="Local WeChat emulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5050)
    ap.add_argument("--public-base-url", default=None,
                    help="Liebian's URL (message pushes go to <it>/wechat/callback); default PUBLIC_BASE_URL")
    args = ap.parse_args()
    settings = load_settings({**os.environ, **({"PUBLIC_BASE_URL": args.public_base_url}
                                               if args.public_base_url else {})})
    app = create_emulator_for(settings)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
