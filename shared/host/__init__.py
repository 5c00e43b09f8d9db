"""Running the system: the ASGI app of every function, the dev server and its embedded
PostgreSQL, the operator CLI and the periodic maintenance. The only part of ``shared`` that
imports ``functions``."""
