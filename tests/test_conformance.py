"""Jupyter messaging conformance of `backendai-python` (jupyter_kernel_test), through the provisioner.

KernelTests.setUpClass calls ``start_new_kernel(kernel_name=...)``: the kernelspec's
provisioner starts the kernel on the cluster exactly as for any other client. pytest runs
setUpClass from a class-scoped fixture, after the module-scoped ones, so the autouse module
fixture below has the cluster up and BACKENDAI_URL/TOKEN and the Jupyter dirs exported before
the kernel is asked for; its teardown runs after tearDownClass and checks nothing is left.
"""

from __future__ import annotations

import json
from typing import Iterator

import jupyter_kernel_test
import pytest

from conftest import TRACE_CODE, Cluster, assert_no_leaks, parse_traces, trace_remote

pytestmark = pytest.mark.docker

_traces: list = []


@pytest.fixture(scope="module", autouse=True)
def _on_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    assert_no_leaks(cluster, _traces)


class BackendAIPythonKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backendai-python"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"

    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import collec", "matches": {"collections"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2", "for i in range(3):"]
    invalid_code_samples = ["import = 7q", "1 +* 2"]

    code_page_something = "zip?"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
        {"code": "__import__('os').getuid()", "result": "1000"},
    ]
    code_display_data = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))", "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))", "mime": "text/latex"},
    ]
    code_history_pattern = "1?2*"
    # As jupyter_kernel_test's own ipykernel config: its "range" case asks for the session
    # number a tail reply names, which ipykernel (local python3 too) answers from a database it
    # has not written yet. test_history_range_current_session covers "range" as ipykernel serves it.
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    def test_history_range_current_session(self) -> None:
        codes = [s["code"] for s in self.code_execute_result]
        self.history_helper(codes)  # runs them
        reply = self.history_helper([], output=False, raw=True, hist_access_type="tail", n=len(codes))
        last = reply["content"]["history"][-1][1]
        reply = self.history_helper([], output=True, raw=True, hist_access_type="range",
                                    session=0, start=last - len(codes) + 1, stop=last + 1)
        hist = reply["content"]["history"]
        assert [h[2][0] for h in hist] == codes, hist
        assert [h[2][1] for h in hist] == [s["result"] for s in self.code_execute_result], hist

    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def test_kernel_is_a_backendai_container(self) -> None:
        """The kernel under test is the one the manager placed: a container, uid 1000, RUNNING."""
        cluster = self.cluster
        remote_id = self.km.provisioner._remote_id  # type: ignore[union-attr]
        assert type(self.km.provisioner).__name__ == "BackendAIProvisioner"
        row = [r for r in cluster.kernel_rows() if r["id"] == remote_id]
        assert [r["status"] for r in row] == ["RUNNING"], cluster.kernel_rows()
        self.flush_channels()
        reply, out = self.execute_helper(TRACE_CODE)
        assert reply["content"]["status"] == "ok", reply
        text = "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")
        traces = parse_traces(text)
        assert len(traces) == 1 and traces[0].in_container and traces[0].uid == 1000, text
        mine = trace_remote(cluster, remote_id)
        assert traces[0].ports == mine.ports
        assert any(c.id.startswith(traces[0].container) and c.labels["ai.backend.kernel"] == mine.container
                   for c in cluster.containers()), json.dumps([c.name for c in cluster.containers()])
        _traces.extend([traces[0], mine])

