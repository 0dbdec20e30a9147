"""kazoo over TLS: `tls.py HOST:SECUREPORT CA CERT KEY OTHERCERT OTHERKEY`.

Connects with use_ssl and a client certificate (verified against the CA),
creates a node only its x509 identity may read, reads it back, and checks
that a client with another certificate is refused (NoAuth) and that a client
without a certificate gets no session when the server needs one.
"""
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from common import check, client, main, stop_quietly, unique_root

CA, CERT, KEY, OTHER_CERT, OTHER_KEY = sys.argv[2:7]


def run(hosts):
    a = client(hosts, use_ssl=True, ca=CA, certfile=CERT, keyfile=KEY, verify_certs=True)
    root = unique_root("tls")
    acl = make_acl("x509", "CN=kazoo-app", all=True)
    a.create(root, b"only for kazoo-app", acl=[acl])
    data, _ = a.get(root)
    check(data == b"only for kazoo-app", "read back over TLS: %r" % data)
    check(("x509", "CN=kazoo-app") in [(x.id.scheme, x.id.id) for x in a.get_acls(root)[0]], "the x509 ACL is stored")
    b = client(hosts, use_ssl=True, ca=CA, certfile=OTHER_CERT, keyfile=OTHER_KEY, verify_certs=True)
    try:
        b.get(root)
        check(False, "another certificate read an x509-only node")
    except NoAuthError:
        pass
    bare = KazooClient(hosts=hosts, timeout=5.0, use_ssl=True, ca=CA, verify_certs=True)
    try:
        bare.start(timeout=4)
        check(False, "a client without a certificate got a session")
    except Exception:
        pass
    finally:
        stop_quietly(bare)
    a.delete(root)


if __name__ == "__main__":
    main("tls", run)
