"""Teams: a named group led by a captain (an active partner), to which campaign codes can be attributed."""
