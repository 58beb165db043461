"""The patient portal's shell (app label ``portal``): sign-in codes and sessions
(``sessions``, the rules; ``signin``, the pages), the patient's own data and privacy pages
(``profile``, ``forms``), and the portal's part of the LGPD plug-ins (``privacy``, connected
in ``apps.PortalConfig.ready``). The domain apps keep their own portal pages (scheduling's
``portal/``, billing's ``portal.py``); ``config.portal_urls`` joins them all."""
