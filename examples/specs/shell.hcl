# Shell commands with captures and assertions.
variable "config_value" {
  type        = number
  default     = 7
  description = "The value written to the board's config store."
}

spec "shell" {
  description = "The sim shell keeps config, across a power cycle too, and its uptime grows."
  board {
    type = "sim"
    tags = { rack = "virtual" }
  }
  timeout = "2m"

  setup {
    flash {}
    power "cycle" {}
    expect {
      regex   = "Booting hilfarm-sim v(\\S+)"
      capture = "version"
    }
    expect { text = "sim> " }
  }

  test "version matches the banner" {
    send { line = "version" }
    expect {
      regex   = "(?m)^([0-9][0-9A-Za-z.+-]*)\\s*$"
      within  = "2s"
      capture = "reported"
    }
    assert {
      that    = capture.reported == capture.version
      message = "version says ${capture.reported}, the banner said ${capture.version}"
    }
  }

  test "config round trip" {
    send { line = "config set answer ${var.config_value}" }
    expect { text = "answer=${var.config_value}" }
    send { line = "config get answer" }
    expect {
      regex   = "answer=([0-9]+)"
      capture = "answer"
    }
    assert {
      that    = tonumber(capture.answer) == var.config_value
      message = "config get answer returned ${capture.answer}"
    }
  }

  test "config survives a power cycle" {
    retries = 1
    send { line = "config set x 7" }
    expect { text = "x=7" }
    power "cycle" {
      off_for = "500ms"
    }
    expect {
      text   = "sim> "
      within = "10s"
    }
    send { line = "config get x" }
    expect {
      regex   = "x=([0-9]+)"
      capture = "x"
    }
    assert {
      that    = capture.x == "7"
      message = "config lost across a power cycle"
    }
  }

  test "uptime grows" {
    send { line = "uptime" }
    expect {
      regex   = "uptime=([0-9]+)ms"
      capture = "t1"
    }
    wait { for = "200ms" }
    send { line = "uptime" }
    expect {
      regex   = "uptime=([0-9]+)ms"
      capture = "t2"
    }
    assert {
      that    = tonumber(capture.t2) > tonumber(capture.t1)
      message = "uptime went from ${capture.t1} ms to ${capture.t2} ms"
    }
  }
}
