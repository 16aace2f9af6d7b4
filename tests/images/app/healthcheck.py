"""Docker HEALTHCHECK for the sample app: exit 0 only when GET /health answers 200."""
import os
import sys
import urllib.request

url = "http://127.0.0.1:%s/health" % os.environ.get("PORT", "8080")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore *_proxy env
try:
    with opener.open(url, timeout=1.5) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as exc:  # HTTPError (500), connection refused, timeout
    print("health check failed: %s" % exc)
    sys.exit(1)
