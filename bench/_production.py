"""The settings every benchmark runs with: production's (DEBUG off — with it on, Django keeps
and formats every query for its debug log, which is not what production pays)."""

#: Environment of a benchmark process, before Django starts. The key encrypts only the
#: benchmark's own data; it is fixed so that what one run stored the next can read.
PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "bench-" + "x" * 50,
    "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
    "CUIDAR_FERNET_KEYS": "1RkVQc1mfWzSl7uKZvyUHAQcT3kTuqR7PZM6evz1imA=",
    "SECURE_SSL_REDIRECT": "False",
}
