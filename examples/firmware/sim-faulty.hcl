# A firmware model that misbehaves on command, for tests and for trying
# how specs and the farm react to a broken board.
version   = "0.9.0-faulty"
banner    = "Booting hilfarm-sim v${version}"
boot_time = "10ms"

command "crash" {
  response = "HardFault at 0x0800_1234"
  action   = "reboot"
}

command "freeze" {
  action = "hang"
}

command "unplug" {
  response = "usb: bye"
  action   = "disconnect"
}

command "noise" {
  action = "garbage"
}

faults {
  hang_after     = 20      # stops answering after 20 commands
  garbage_bytes  = 16      # line noise before every banner
  disconnect_for = "300ms" # how long `unplug` keeps the adapter away
}
