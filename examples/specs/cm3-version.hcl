# hilfarm's own Cortex-M3 firmware on QEMU (lm3s6965evb): the banner and
# the version command must report the expected version.
variable "expected_version" {
  type        = string
  default     = "1.2.3"
  description = "The version the candidate must report (override at submit)."
}

spec "cm3-version" {
  description = "The Cortex-M3 candidate boots and reports the expected version."
  board { type = "cm3-lm3s6965" }
  timeout = "1m"
  fail_on = ["HardFault"]

  setup {
    flash {}
    power "cycle" {}
  }

  test "banner" {
    expect {
      text   = "HILFW ${var.expected_version} booting on "
      within = "5s"
    }
    expect {
      text   = "hilfw> "
      within = "2s"
    }
  }

  test "version command" {
    send {
      line = "version"
    }
    expect {
      text   = var.expected_version
      within = "2s"
    }
  }

  teardown {
    power "off" {}
  }
}
