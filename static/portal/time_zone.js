// The viewer's time zone for the next request (workflows_app/time_zones.py checks it).
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var wanted = "portal_tz=" + zone;
    if (/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone || "") && document.cookie.split("; ").indexOf(wanted) === -1) {
      document.cookie = wanted + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: times stay in the portal's zone, which the label names */ }
})();
