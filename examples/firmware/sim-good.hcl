# A sim board firmware model: the "firmware candidate" of a sim board.
# Format: docs/emulators.md. This one is healthy: every example spec passes.
version   = "1.1.0"
banner    = "Booting hilfarm-sim v${version}"
boot_time = "50ms"
prompt    = "sim> "

# Answers by command. The longest matching name wins; the words after it
# are args. Built-ins (version, echo, uptime, config, led, ping, flood,
# reboot, hang, ...) need no entry.
command "sensor temp" {
  response = "temp=23.5C"
}

command "sensor humidity" {
  response = "humidity=41%"
}

command "selftest" {
  response = "selftest: ram ok, flash ok, sensor ok\nselftest PASS"
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
