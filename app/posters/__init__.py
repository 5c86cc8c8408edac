"""Poster templates (operator data, versioned) and members' rendered posters, around the pure `posters` package."""
