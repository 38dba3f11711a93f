# A regressed candidate of the same firmware: the sensor reads out of range
# and the config store is in RAM, so settings are lost across a reboot or
# power cycle. The example specs fail on it (they do not error: the board
# and the rig are fine; the firmware misbehaves).
version           = "1.2.0-rc1"
banner            = "Booting hilfarm-sim v${version}"
boot_time         = "50ms"
prompt            = "sim> "
persistent_config = false

command "sensor temp" {
  response = "temp=87.0C"
}

command "sensor humidity" {
  response = "humidity=41%"
}

command "selftest" {
  response = "selftest: ram ok, flash ok, sensor out of range\nselftest FAIL"
  delay    = "20ms"
}
# Each press of the button toggles the LED 20ms later, and the firmware
# says so on the console.
line "button" {}

line "led" {
  toggle_on = "button"
  delay     = "20ms"
  print     = "led=${value == 1 ? "on" : "off"}"
}
