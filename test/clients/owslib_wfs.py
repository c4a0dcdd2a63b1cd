"""OWSLib (Debian 12's 0.27) as a WFS client: GetFeature in every CRS name form, GET and POST.

Usage: owslib_wfs.py BASE_URL OUT_DIR FEATURE_ID SRSNAME...
Writes each response body to OUT_DIR/<version>-<method>-<n>.gml and prints one JSON line:
{"files": [{"version", "method", "srsName", "file"}], "post": {...}}. The caller reads the files
back with GDAL and checks where the feature lands.
"""
import json
import os
import sys

from owslib import fes as fes1
from owslib import fes2
from owslib.etree import etree
from owslib.util import openURL
from owslib.wfs import WebFeatureService

base, out, fid = sys.argv[1], sys.argv[2], sys.argv[3]
forms = sys.argv[4:]
files = []
result = {"files": files}


def save(version, method, srs, data):
    name = os.path.join(out, "%s-%s-%d.gml" % (version, method, len(files)))
    with open(name, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    files.append({"version": version, "method": method, "srsName": srs, "file": name})


# WFS 1.1.0: getfeature takes a srsname
w11 = WebFeatureService(base + "/wfs", version="1.1.0")
result["types11"] = sorted(w11.contents)
for srs in forms:
    r = w11.getfeature(typename=["geodata:pois"], featureid=["pois." + fid], srsname=srs or None)
    save("1.1.0", "get", srs, r.read())

# WFS 2.0.0: OWSLib builds the URL (it has no srsname argument); the srsName is added to it
w20 = WebFeatureService(base + "/wfs", version="2.0.0")
result["types20"] = sorted(w20.contents)
for srs in forms:
    url = w20.getGETGetFeatureRequest(typename=["geodata:pois"], featureid=["pois." + fid])
    if srs:
        url += "&srsName=" + srs.replace("#", "%23")
    save("2.0.0", "get", srs, openURL(url, timeout=60).read())

# POST GetFeature as OWSLib writes it (WFS 2.0: 'typenames', 'outputformat' in lower case): by
# feature id, and by a filter (OWSLib takes the Filter element from inside the string it is given)
post = {}
FES20 = "http://www.opengis.net/fes/2.0"
OGC = "http://www.opengis.net/ogc"
for version, w, ns, mod in (("2.0.0", w20, FES20, fes2), ("1.1.0", w11, OGC, fes1)):
    inner = etree.tostring(mod.PropertyIsEqualTo(propertyname="id", literal=fid).toXML()).decode("utf-8")
    wrapped = '<w xmlns:f="%s"><f:Filter>%s</f:Filter></w>' % (ns, inner)
    for how, kwargs in (("id", {"featureid": ["pois." + fid]}), ("filter", {"filter": wrapped})):
        try:
            r = w.getfeature(typename=["geodata:pois"], method="Post", **kwargs)
            data = r.read()
            save(version, "post-" + how, "", data)
            post[version + "-" + how] = {"ok": True}
        except Exception as e:  # the failure is the finding
            post[version + "-" + how] = {"ok": False, "error": str(e)[:300]}
result["post"] = post
print(json.dumps(result))
