"""The embedded default's SQLite: a transaction that reads and then writes must not fail because another
connection wrote in between ("database is locked" without waiting: in WAL mode a transaction whose read snapshot
is older than another's commit cannot become a writer). A WeChat scan's binding failed that way while a follower
lookup committed next to it."""
import threading

from sqlalchemy import text

from app.db import make_engine, make_session_factory


def _engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'embedded.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE members (id INTEGER PRIMARY KEY, referrer_id INTEGER, nickname TEXT)"))
        conn.execute(text("INSERT INTO members (id, nickname) VALUES (1, 'guest'), (2, 'other')"))
    return engine


def test_a_savepoint_that_reads_then_writes_waits_for_a_concurrent_writer_instead_of_failing(tmp_path):
    engine = _engine(tmp_path)
    sessions = make_session_factory(engine)
    binding, other = sessions(), sessions()
    with binding.begin_nested():  # as the scan's binding does
        assert binding.execute(text("SELECT referrer_id FROM members WHERE id = 1")).scalar() is None
        done = threading.Event()

        def follower_lookup():  # another request commits a write meanwhile
            other.execute(text("UPDATE members SET nickname = 'renamed' WHERE id = 2"))
            other.commit()
            done.set()

        writer = threading.Thread(target=follower_lookup)
        writer.start()
        done.wait(1.0)
        binding.execute(text("UPDATE members SET referrer_id = 2 WHERE id = 1 AND referrer_id IS NULL"))
    binding.commit()
    writer.join(10)
    assert not writer.is_alive()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT referrer_id, nickname FROM members ORDER BY id")).all() == [
            (2, "guest"), (None, "renamed")]
    binding.close()
    other.close()
    engine.dispose()

