"""bench_boards' app baselines: the real app (wsgi:app) with two more endpoints that answer a constant, measured
under the same gunicorn settings and client as the leaderboard:
- /bench/signed-noop checks the member's bearer token as the leaderboard read does (signature only, no database):
  the floor under the leaderboard read, which adds its one Redis call and its answer to it;
- /bench/member-noop signs the member in as every other member endpoint does (the token, then the member's row in
  PostgreSQL, following merges): the floor under any member read that needs the database."""
from app.api.auth import current_member_id, member_required, signed_member_id
from wsgi import app


@app.get("/bench/signed-noop")
def signed_noop():
    return {"member_id": signed_member_id()}


@app.get("/bench/member-noop")
@member_required
def member_noop():
    return {"member_id": current_member_id()}
