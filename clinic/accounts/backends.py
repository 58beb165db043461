"""django-axes' backend, tolerant of calls without a request.

Axes refuses ``authenticate()`` without a request; the web sign-in always passes one, but
code run on the server (a management command, a test client's ``login()``) may not, and
nothing reaches it from outside, so there is nothing to count or lock: the call goes on to
the next backend."""

from axes.backends import AxesStandaloneBackend


class AxesBackend(AxesStandaloneBackend):
    def authenticate(self, request=None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)
