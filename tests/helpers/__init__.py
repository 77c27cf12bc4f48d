"""What the tests share, so that no test file imports another: one raster factory and the scenes written with it
(`rasters`), one set of stand-in models (`models`), tiny datasets (`datasets`), Sentinel-2 products (`sentinel2`),
local servers for remote inputs (`servers`), the tiny training run (`training`) and child processes started as a
terminal starts them (`processes`)."""
