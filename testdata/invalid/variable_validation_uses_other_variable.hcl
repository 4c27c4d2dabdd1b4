variable "version" {
  default = "1.0.0"
  validation {
    condition     = var.pw != ""
    error_message = "never checked"
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

# ERROR: 4:21 Invalid validation condition
