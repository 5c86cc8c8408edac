"""Baselines' trivial endpoints: for bench_scans, the WeChat callback under the same gunicorn settings; for
bench_payouts, WeChat Pay's transfer notification answered without verifying, decrypting or storing anything; for
bench_boards, the leaderboard's path answered with a constant, without reading the token, the database or Redis."""
from flask import Flask

app = Flask(__name__)


@app.post("/wechat/callback")
def callback():
    return "success"


@app.post("/wechatpay/notify/transfer")
def transfer_notification():
    return {"code": "SUCCESS"}


@app.get("/api/mp/leaderboard")
def leaderboard():
    return {"ok": True}
