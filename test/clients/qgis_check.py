"""Headless QGIS as a client of a running server: WMS render (Lambert-93 and Web Mercator),
identify (GetFeatureInfo), WFS 2.0.0 and 1.1.0 with paging. Prints one JSON document."""
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from qgis.core import (QgsApplication, QgsVectorLayer, QgsRasterLayer, QgsCoordinateReferenceSystem,
                       QgsMapSettings, QgsMapRendererParallelJob, QgsCoordinateTransform, QgsProject,
                       QgsPointXY, QgsRaster, QgsRectangle)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

base = sys.argv[1]
app = QgsApplication([], False)
app.initQgis()
out = {"wms": {}, "wfs": {}}

# Points of interest are drawn at town scale only (the demo styles' scale ranges, like a
# cartographer's): they are looked at over 6 km around a demo town, the other layers whole.
TOWN = QgsRectangle(927000, 6892000, 933000, 6898000)

def render(layer, crs, extent_2154=None):
    ms = QgsMapSettings()
    ms.setLayers([layer])
    ms.setDestinationCrs(QgsCoordinateReferenceSystem(crs))
    if extent_2154 is None:
        tr = QgsCoordinateTransform(layer.crs(), ms.destinationCrs(), QgsProject.instance())
        ms.setExtent(tr.transformBoundingBox(layer.extent()))
    else:
        tr = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:2154"), ms.destinationCrs(), QgsProject.instance())
        ms.setExtent(tr.transformBoundingBox(extent_2154))
    ms.setOutputSize(QSize(200, 150))
    ms.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(ms)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    return sum(1 for x in range(0, 200, 2) for y in range(0, 150, 2) if img.pixelColor(x, y).name() != "#ffffff")

for name in ["communes", "roads", "pois", "parcels"]:
    for crs in ["EPSG:2154", "EPSG:3857"]:
        rl = QgsRasterLayer(f"contextualWMSLegend=0&crs={crs}&dpiMode=7&format=image/png&layers={name}&styles=&url={base}/wms?", name, "wms")
        out["wms"][f"{name} {crs}"] = render(rl, crs, TOWN if name == "pois" else None) if rl.isValid() else -1

rl = QgsRasterLayer(f"contextualWMSLegend=0&crs=EPSG:2154&dpiMode=7&format=image/png&layers=communes&styles=&url={base}/wms?", "c", "wms")
e = rl.extent()
r = rl.dataProvider().identify(QgsPointXY((e.xMinimum() + e.xMaximum()) / 2, (e.yMinimum() + e.yMaximum()) / 2), QgsRaster.IdentifyFormatFeature, e, 400, 300)
out["identify"] = len(r.results()) if r.isValid() else -1

for ver in ["2.0.0", "1.1.0"]:
    vl = QgsVectorLayer(f"{base}/wfs?typename=geodata:pois&version={ver}&srsname=EPSG:2154&pagingEnabled=true&pageSize=700", "pois", "WFS")
    names = [f["nom"] for f in vl.getFeatures()] if vl.isValid() else []
    out["wfs"][ver] = {"valid": vl.isValid(), "count": len(names), "distinct": len(set(names)), "accented": sum(1 for n in names if any(ord(c) > 127 for c in n))}
print(json.dumps(out), flush=True)
os._exit(0)  # QGIS teardown may crash; the result is out
app.exitQgis()
