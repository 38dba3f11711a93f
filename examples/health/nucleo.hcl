# Health check of the Nucleo boards: the board powers up and its firmware
# prints something on the console (whatever candidate it last ran).
spec "nucleo-health" {
  description = "Power, console and the ST-Link's serial bridge work."
  board { type = "nucleo-f401re" }
  timeout = "2m"

  setup {
    power "cycle" {}
    expect {
      regex  = "\\S"
      within = "20s"
    }
  }

  test "console is alive" {
    retries = 2
    send { line = "" }
    expect {
      regex  = "\\S"
      within = "5s"
    }
  }

  teardown {
    power "off" {}
  }
}
