variable "version" {
  type    = string
  default = "v1"
  validation {
    condition     = can(regex("^[0-9]+[.][0-9]+[.][0-9]+$", var.version))
    error_message = "version must look like 1.2.3."
  }
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 3:13 Invalid value for variable
