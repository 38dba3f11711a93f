# The front door of a multi-rack farm (docs/racks.md): jobs for board types
# only racks have go to them through the hub.
farm "front" {
  listen   = ":8080"
  data_dir = "data"
}

hub {
  listen = ":7422"
  dir    = "/etc/hilfarm/farm"
}
