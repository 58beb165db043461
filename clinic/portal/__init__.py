"""The patient portal's clinic pages: sign-in (``signin``), and profile and privacy
(``profile``). Sessions, codes and the view decorators are in ``sessions``."""
