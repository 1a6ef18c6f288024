"""Host-side tests of the SDK's pure parts: python3 -m unittest discover -s plugins/python/sdk/tests"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from guildhall import CapabilityError, HTTPError, Request, Response, Router, kv  # noqa: E402
from guildhall.serve import respond  # noqa: E402


def router() -> Router:
    r = Router()

    @r.get("/notices")
    def index(req):
        return {"q": req.query_param("q")}

    @r.post("/notices")
    def create(req):
        return Response.json(req.json(), 201)

    @r.get("/notices/{id}")
    def show(req):
        return Response.text(req.params["id"])

    @r.delete("/notices/{id}")
    def remove(req):
        raise HTTPError(404, "there is no notice " + req.params["id"])

    @r.get("/files/{*rest}")
    def files(req):
        return req.params["rest"]

    @r.get("/boom")
    def boom(req):
        raise RuntimeError("secret detail")

    return r


class RouterTest(unittest.TestCase):
    def call(self, method, path, body=b"", headers=()):
        return respond(router(), Request(method, path, list(headers), body))

    def test_params_are_decoded(self):
        self.assertEqual(self.call("GET", "/notices/a%20b").body, b"a b")

    def test_query(self):
        self.assertEqual(json.loads(self.call("GET", "/notices?q=x%26y&q=2").body), {"q": "x&y"})

    def test_404_and_exact_paths(self):
        for path in ("/nope", "/notices/", "/notices/1/2"):
            resp = self.call("GET", path)
            self.assertEqual(resp.status, 404, path)
            self.assertEqual(resp.header("content-type"), "application/problem+json")

    def test_405_with_allow(self):
        resp = self.call("PUT", "/notices/1")
        self.assertEqual(resp.status, 405)
        self.assertEqual(resp.header("allow"), "GET, DELETE, HEAD, OPTIONS")
        doc = json.loads(resp.body)
        self.assertEqual(doc["type"], "about:blank")
        self.assertEqual(doc["title"], "Method Not Allowed")
        self.assertEqual(doc["status"], 405)

    def test_options_and_head(self):
        resp = self.call("OPTIONS", "/notices")
        self.assertEqual((resp.status, resp.header("allow")), (204, "GET, POST, HEAD, OPTIONS"))
        resp = self.call("HEAD", "/notices/7")
        self.assertEqual((resp.status, resp.body), (200, b""))

    def test_rest_parameter(self):
        self.assertEqual(self.call("GET", "/files/a/b%2Fc").body, b"a/b/c")

    def test_json_body_and_bad_json(self):
        self.assertEqual(self.call("POST", "/notices", b'{"a":1}').status, 201)
        resp = self.call("POST", "/notices", b"{nope")
        self.assertEqual(resp.status, 400)

    def test_http_error_is_a_problem(self):
        doc = json.loads(self.call("DELETE", "/notices/9").body)
        self.assertEqual(doc["detail"], "there is no notice 9")

    def test_exceptions_hide_their_message(self):
        resp = self.call("GET", "/boom")
        self.assertEqual(resp.status, 500)
        self.assertNotIn(b"secret", resp.body)

    def test_form(self):
        req = Request("POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
                      b"a=1&b=two+words&a=3")
        self.assertEqual(req.form(), {"a": "1", "b": "two words"})
        self.assertEqual(req.content_type, "application/x-www-form-urlencoded")


class PlatformTest(unittest.TestCase):
    def test_undeclared_capability(self):
        with self.assertRaises(CapabilityError) as e:
            kv.get("x")
        self.assertIn("kv = true", str(e.exception))
        self.assertEqual(e.exception.status, 500)

    def test_problem_extensions_cannot_override(self):
        doc = json.loads(Response.problem(422, "bad", type="x", field="title").body)
        self.assertEqual((doc["type"], doc["field"], doc["title"]), ("about:blank", "title", "Unprocessable Content"))


if __name__ == "__main__":
    unittest.main()
