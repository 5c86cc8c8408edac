import gc

from app import create_app

app = create_app()

# Everything loaded so far (modules, metadata, mappers) lives as long as the process: keep it out of the cyclic
# collector's full passes, which otherwise walk it all and stall requests for tens of milliseconds.
gc.collect()
gc.freeze()
