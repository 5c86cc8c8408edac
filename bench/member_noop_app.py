"""bench_boards' second baseline: the real app (wsgi:app) with one more endpoint that signs the member in as every
member endpoint does (the bearer token, then the member's row, following merges) and answers a constant: the floor
under any member read, measured under the same gunicorn settings and client as the leaderboard."""
from app.api.auth import current_member_id, member_required
from wsgi import app


@app.get("/bench/member-noop")
@member_required
def member_noop():
    return {"member_id": current_member_id()}
