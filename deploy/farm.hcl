# /etc/hilfarm/farm.hcl: the farm that the hilfarm service runs
# (systemctl start hilfarm; logs: journalctl -u hilfarm).
# The language is described in docs/language.md of hilfarm's source
# (/usr/share/doc/hilfarm/ holds the README and the licences).
# Check a change with: hilfarm validate /etc/hilfarm/farm.hcl
# then: systemctl restart hilfarm

farm "lab" {
  listen         = ":8080"
  data_dir       = "/var/lib/hilfarm"
  anonymous_read = false
}

# One simulated board, so that a fresh install has something to run jobs
# on. Remove it once real boards are configured.
board_type "sim" {}

board "sim-01" {
  type = "sim"
  emulator "sim" {}
  gpio "button" {
    output = true
  }
  gpio "led" {}
}

# A real board: relay-switched power on a GPIO line, a USB serial console
# and a flash command. The service user is in the gpio and dialout groups.
#
# board_type "nucleo-f401re" {
#   flash "command" {
#     run     = ["openocd", "-f", "board/st_nucleo_f4.cfg", "-c", "program ${firmware.path} verify reset exit"]
#     timeout = "90s"
#   }
# }
#
# board "nucleo-01" {
#   type = "nucleo-f401re"
#   power "gpio" {
#     chip       = "gpiochip0"
#     line       = "GPIO17"
#     active_low = true
#   }
#   console "serial" {
#     device = "/dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_0671FF-if02"
#     baud   = 115200
#   }
# }
