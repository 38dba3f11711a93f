# Health check of the sim boards: run by the controller on quarantined boards
# (a pass lets them back in) and periodically on idle ones. It checks the
# board and the rig with whatever firmware the board has: no flash step.
spec "sim-health" {
  description = "The board powers up, prints its prompt and answers."
  board { type = "sim" }
  timeout = "1m"

  setup {
    power "cycle" {}
    expect {
      text   = "sim> "
      within = "10s"
    }
  }

  test "shell answers" {
    send { line = "version" }
    expect {
      regex  = "[0-9]+\\.[0-9]+"
      within = "2s"
    }
  }

  teardown {
    power "off" {}
  }
}
