# A service whose configuration file is rendered from a template, and
# which depends on a second gsd service (its cache) on the same host.
# Changing the config file reloads the service (SERVICE_CONTROL_PARAMCHANGE)
# instead of restarting it.

variable "winrm_password" {
  type      = string
  sensitive = true
}

variable "cache_password" {
  type        = string
  sensitive   = true
  default     = "change-me"
  description = "Shared secret between api and cache; rendered into both config files."
}

locals {
  cache_port = 6380
}

host "app1" {
  address = "app1.example.internal"
  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

build "hello" {
  package = "./services/hello"
}

service "cache" {
  hosts        = ["app1"]
  binary       = build.hello
  display_name = "Orders Cache"
  args         = ["-listen", "127.0.0.1:${local.cache_port}"]

  health {
    tcp     = "127.0.0.1:${local.cache_port}"
    timeout = "20s"
  }
}

service "api" {
  hosts        = ["app1"]
  binary       = build.hello
  display_name = "Orders API (templated)"
  args         = ["-listen", "127.0.0.1:8081", "-config", "C:\\ProgramData\\gsd\\services\\api\\files\\config.yaml"]
  depends_on   = [service.cache]

  file "config.yaml" {
    content = templatefile("templates/api.yaml.tpl", {
      port       = 8081
      cache_addr = "127.0.0.1:${local.cache_port}"
      password   = var.cache_password
    })
    on_change = "reload"
  }

  health {
    http    = "http://127.0.0.1:8081/healthz"
    timeout = "30s"
  }
}
