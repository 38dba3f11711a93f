# A campaign: a repeated test with power cuts (random, swept, fixed).
variable "base_ms" {
  type    = number
  default = 100
}

spec "campaign" {
  board { type = "sim" }
  timeout = "30m"

  test "update survives a power cut" {
    timeout = "20m"
    repeat {
      count               = 200
      duration            = "2h"
      stop_after_failures = 3
      min_pass_rate       = 0.99
      seed                = 42
      spread              = 2
    }
    power "cycle" {}
    expect { text = "sim> " }
    send { line = "update ${repeat.iteration} of ${repeat.count}" }
    power "cut" {
      after   = "update: writing"
      within  = "5s"
      random  = ["0ms", "800ms"]
      off_for = "200ms"
    }
    expect { regex = "sim> " }
    power "cut" {
      after_regex = "slot [AB]"
      sweep       = ["0ms", "500ms"]
      steps       = 50
    }
    power "cut" {
      delay = "${var.base_ms + repeat.iteration}ms"
    }
  }

  test "boot soak" {
    repeat {
      duration = "10m"
    }
    power "cycle" {}
    measure "boot_ms" {
      regex = "boot in ([0-9]+) ms"
      unit  = "ms"
    }
  }

  test "one cut" {
    power "cut" {
      delay = "150ms"
    }
    expect { text = "sim> " }
  }
}
