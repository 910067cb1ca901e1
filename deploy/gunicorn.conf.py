"""gunicorn settings for authserver (`authserver serve` passes --bind and --workers)."""

# Sync workers: every request is short (a signature, a hash, one indexed query).
worker_class = "sync"
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
