# Health check of the sim boards: run by the controller on quarantined boards
# (a pass lets them back in) and periodically on idle ones. It checks the
# board and the rig with whatever firmware the board has: no flash step.
# A prompt left from the last job never answers the first expect (the
# console is cut at power-on), and the shell test is retried once more, so
# a command typed while a slow firmware still boots does not fail a good
# board.
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
    retries = 2
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
