farm "f" {}

hub {
  listen = "0.0.0.0:70000"
  dir    = "/etc/hilfarm/farm"
  user   = "x"
}
