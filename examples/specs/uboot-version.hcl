# Debian's U-Boot on QEMU: stop autoboot and ask for the version.
spec "uboot-version" {
  description = "U-Boot stops at its prompt and reports a 2023 release."
  board { type = "qemu-arm-virt" }
  timeout = "2m"
  fail_on = ["data abort", "undefined instruction"]

  setup {
    flash {}
    power "cycle" {}
    expect {
      text   = "Hit any key to stop autoboot"
      within = "30s"
    }
    send { line = "" }
    expect {
      text   = "=> "
      within = "5s"
    }
  }

  test "version" {
    send { line = "version" }
    expect {
      regex   = "U-Boot (2023\\.[0-9]+)"
      within  = "5s"
      capture = "uboot"
    }
    assert {
      that    = length(regexall("^2023\\.", capture.uboot)) > 0
      message = "unexpected U-Boot release ${capture.uboot}"
    }
  }

  teardown {
    power "off" {}
  }
}
