farm "f" {}

board_type "sim" {}

hub {
  listen = "7422"
  dir    = ""
}

hub {
  dir = "/etc/hilfarm/farm"
}
