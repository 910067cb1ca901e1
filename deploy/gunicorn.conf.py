"""gunicorn settings for authserver (`authserver serve` passes --bind and --workers)."""

# Threaded workers, as `authserver serve` runs them (authserver/serving.py is the reference):
# a private_key_jwt client's jwks_uri fetch may wait up to JWKS_FETCH_TIMEOUT and must
# hold one thread, never a whole worker.
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 10
keepalive = 5
# Load the app (config validation, key material) once in the master, then fork.
preload_app = False
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
# The app reads X-Forwarded-* only when behind a proxy you configured (see README).
forwarded_allow_ips = "127.0.0.1"
