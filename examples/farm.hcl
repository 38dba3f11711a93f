# An example farm: one Raspberry Pi with four relay-powered boards on USB
# serial adapters, two QEMU boards and two simulated boards.
# Validate it with: hilfarm validate examples/farm.hcl

farm "lab-a" {
  listen         = ":8080"
  data_dir       = "/var/lib/hilfarm"
  max_upload     = "64MiB"
  anonymous_read = true

  retention {
    days     = 90
    max_size = "20GiB"
  }
}

# ---------------------------------------------------------------- board types

board_type "nucleo-f401re" {
  flash "command" {
    run     = ["openocd", "-f", "board/st_nucleo_f4.cfg", "-c", "program ${firmware.path} verify reset exit"]
    timeout = "90s"
  }
  health_check = "health/nucleo.hcl"

  # Host tools that specs on this type may call by name.
  tool "usb-reset" {
    run     = ["uhubctl", "-l", "1-1", "-a", "cycle"]
    timeout = "20s"
  }
  tool "read-adc" {
    params = ["channel"]
    run    = ["hil-adc", "--board", board.name, "--channel", arg.channel]
  }
}

board_type "esp32-devkit" {
  flash "command" {
    run     = ["esptool.py", "--chip", "esp32", "--port", "/dev/serial/by-id/usb-Silicon_Labs_CP2102_${board.tags.serial}-if00-port0", "write_flash", "0x10000", firmware.path]
    timeout = "3m"
  }
}

board_type "qemu-arm-virt" {}
board_type "cm3-lm3s6965" {}
board_type "sim" {
  health_check = "health/sim.hcl"
}

# ------------------------------------------------------- relay-powered boards

board "nucleo-01" {
  type = "nucleo-f401re"
  tags = { rack = "a", shield = "sensor" }

  power "gpio" {
    chip       = "gpiochip0"
    line       = "GPIO17"
    active_low = true
    off_for    = "1s"
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_066DFF485750-if02"
    baud = 115200
  }
  gpio "button" {
    chip    = "gpiochip0"
    line    = "GPIO22"
    output  = true
    initial = 0
  }
  gpio "led" {
    chip = "gpiochip0"
    line = "GPIO23"
    bias = "pull-down"
  }
  gpio "reset" {
    chip       = "gpiochip0"
    line       = 24
    output     = true
    active_low = true
    drive      = "open-drain"
  }
}

board "nucleo-02" {
  type = "nucleo-f401re"
  tags = { rack = "a", shield = "none" }

  power "gpio" {
    chip       = "gpiochip0"
    line       = "GPIO27"
    active_low = true
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-STMicroelectronics_STM32_STLink_0670FF535155-if02"
  }
}

board "esp32-01" {
  type = "esp32-devkit"
  tags = { rack = "b", serial = "0001" }

  power "gpio" {
    line       = "GPIO5"
    active_low = true
    off_for    = "2s"
  }
  console "serial" {
    port      = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0"
    baud      = 115200
    data_bits = 8
    parity    = "none"
    stop_bits = "1"
  }
}

board "esp32-02" {
  type = "esp32-devkit"
  tags = { rack = "b", serial = "0002" }

  power "gpio" {
    line       = "GPIO6"
    active_low = true
    off_for    = "2s"
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_0002-if00-port0"
  }
  gpio "boot" {
    line    = "GPIO13"
    output  = true
    initial = 1
  }
}

# ------------------------------------------------------------ emulated boards

# Debian's U-Boot (package u-boot-qemu) on QEMU's virt machine. A firmware
# candidate replaces the image as -bios.
board "uboot-01" {
  type = "qemu-arm-virt"
  emulator "qemu" {
    machine  = "virt"
    cpu      = "cortex-a15"
    firmware = "/usr/lib/u-boot/qemu_arm/u-boot.bin"
  }
}

# A Cortex-M3 running hilfarm's own test firmware (an ELF given as -kernel).
board "cm3-01" {
  type = "cm3-lm3s6965"
  emulator "qemu" {
    machine = "lm3s6965evb"
    load    = "kernel"
  }
}

# Simulated boards: a scripted firmware model behind a pty (see
# examples/firmware/). button is a simulated output line, led an input.
board "sim-01" {
  type = "sim"
  tags = { rack = "virtual" }
  emulator "sim" {
    firmware = "firmware/sim-good.hcl"
  }
  gpio "button" {
    output = true
  }
  gpio "led" {}
}

board "sim-02" {
  type = "sim"
  tags = { rack = "virtual" }
  emulator "sim" {
    firmware = "firmware/sim-good.hcl"
  }
  gpio "button" {
    output = true
  }
  gpio "led" {}
}

# ------------------------------------------------------------------ webhooks

webhook "ci" {
  url    = "https://ci.example.com/hooks/hilfarm"
  secret = "change-me"
  events = ["failed", "error"]
}
