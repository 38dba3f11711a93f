# The candidate boots, prints its banner, and its shell answers.
spec "boot-smoke" {
  description = "A sim board boots the candidate and its shell answers version."
  board { type = "sim" }
  timeout      = "1m"
  idle_timeout = "20s"
  fail_on      = ["panic:", "HardFault"]

  setup {
    flash {}
    power "cycle" {}
    expect {
      regex   = "Booting hilfarm-sim v([0-9A-Za-z.+-]+)"
      within  = "10s"
      capture = "banner_version"
    }
    expect {
      text   = "sim> "
      within = "5s"
    }
  }

  test "shell answers version" {
    send { line = "version" }
    expect {
      text   = capture.banner_version
      within = "2s"
    }
    expect { text = "sim> " }
  }

  teardown {
    power "off" {}
  }
}
