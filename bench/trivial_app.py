"""The baseline for bench_scans: a trivial Flask endpoint under the same gunicorn settings."""
from flask import Flask

app = Flask(__name__)


@app.post("/wechat/callback")
def callback():
    return "success"
