"""Read models across domains: what partners, store managers and operators see, assembled from several domains'
tables. Reads only; no domain imports this package."""
