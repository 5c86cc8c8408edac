import gc

from app import create_app
from workers.scheduler import start_for_served_app

app = create_app()

# The embedded default (no REDIS_URL) has no scheduler process: the served process runs the periodic jobs itself
# (a daemon thread; EMBEDDED_SCHEDULER=0 turns it off). Not started when a CLI command loads this module.
start_for_served_app(app)

# Everything loaded so far (modules, metadata, mappers) lives as long as the process: keep it out of the cyclic
# collector's full passes, which otherwise walk it all and stall requests for tens of milliseconds.
gc.collect()
gc.freeze()
